"""The Redis queue shared by the front end and the workers (imports no role).

`keys` names every key, TTL and cap; `scripts` holds the Lua that makes each state change atomic
and fenced; `records` converts the job hash to and from Python values.
"""

"""Names of the WildRobot MJCF's parts; ids are looked up by name once, in the env.

Actuator order is the order of `ACTUATOR_NAMES` (= `JOINT_NAMES`): waist, left leg, right leg,
left arm, right arm, as in shared/WILDROBOT.md. Every actuator drives the joint of the same name.
"""

from __future__ import annotations

from pathlib import Path

XML_PATH = Path(__file__).resolve().parent / "xmls" / "wildrobot.xml"

HOME_KEYFRAME = "home"

JOINT_NAMES = (
    "waist_yaw",
    "left_hip_pitch",
    "left_hip_roll",
    "left_knee_pitch",
    "left_ankle_pitch",
    "left_ankle_roll",
    "right_hip_pitch",
    "right_hip_roll",
    "right_knee_pitch",
    "right_ankle_pitch",
    "right_ankle_roll",
    "left_shoulder_pitch",
    "left_shoulder_roll",
    "left_elbow_pitch",
    "right_shoulder_pitch",
    "right_shoulder_roll",
    "right_elbow_pitch",
)
ACTUATOR_NAMES = JOINT_NAMES
NUM_ACTUATORS = len(ACTUATOR_NAMES)

ROOT_BODY = "pelvis"
TORSO_BODY = "torso"
FEET_BODIES = ("left_foot", "right_foot")
FEET_SITES = ("left_foot_site", "right_foot_site")
FLOOR_GEOM = "floor"
# Contact pads: heel and toe capsules of each foot, the only geoms that touch the floor.
FOOT_PAD_GEOMS = (("left_heel", "left_toe"), ("right_heel", "right_toe"))

IMU_SITE = "imu"
PELVIS_SITE = "pelvis_site"
# Real-robot IMU sensors (chest).
GYRO_SENSOR = "gyro"
ACCELEROMETER_SENSOR = "accelerometer"
ORIENTATION_SENSOR = "orientation"
# Simulation-only sensor: pelvis linear velocity in the pelvis frame.
LOCAL_LINVEL_SENSOR = "local_linvel"

# Facts sheet (shared/WILDROBOT.md), used by tests and randomization bounds.
TOTAL_MASS_KG = 4.13
SERVO_KP = 21.1
SERVO_KV = 0.5
SERVO_FORCE_LIMIT = 4.0
JOINT_DAMPING = 0.085
JOINT_ARMATURE = 0.025
JOINT_FRICTIONLOSS = 0.022
JOINT_RANGES = {
    "waist_yaw": (-0.524, 0.524),
    "left_hip_pitch": (-0.524, 1.571),
    "left_hip_roll": (-1.571, 0.175),
    "left_knee_pitch": (0.0, 2.094),
    "left_ankle_pitch": (-0.698, 0.785),
    "left_ankle_roll": (-0.785, 0.785),
    "right_hip_pitch": (-1.571, 0.524),
    "right_hip_roll": (-0.175, 1.571),
    "right_knee_pitch": (0.0, 2.094),
    "right_ankle_pitch": (-0.698, 0.785),
    "right_ankle_roll": (-0.785, 0.785),
    "left_shoulder_pitch": (-0.524, 3.142),
    "left_shoulder_roll": (-3.054, 0.436),
    "left_elbow_pitch": (0.0, 1.571),
    "right_shoulder_pitch": (-3.142, 0.524),
    "right_shoulder_roll": (-0.436, 3.054),
    "right_elbow_pitch": (0.0, 1.571),
}
STANDING_HEIGHT = 0.46

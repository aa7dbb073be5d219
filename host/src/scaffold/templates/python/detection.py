"""The `detector` resource of `{{name}}`: componentize-py looks for it in
a module named after the interface that exports it."""

import math
import struct

from componentize_py_types import Err
from wit_world.exports import detection
from wit_world.imports.lookout_plugin_types import PluginError_Config, Verdict

from app import parse_config

# Bumped whenever the saved state's layout changes: an older state is then
# refused and lookout starts the series afresh.
STATE_VERSION = 1
STATE = struct.Struct("<BQdd")


class Detector(detection.Detector):
    """One series: lookout restores it from `save`'s bytes for every batch."""

    def __init__(self, config, points=0, mean=0.0, deviation=0.0):
        self.alpha, self.threshold = parse_config(config)
        self.points, self.mean, self.deviation = points, mean, deviation

    @classmethod
    def create(cls, config):
        return cls(config)

    @classmethod
    def restore(cls, config, state):
        if len(state) != STATE.size or state[0] != STATE_VERSION:
            raise Err(PluginError_Config("state of another version"))
        _, points, mean, deviation = STATE.unpack(state)
        return cls(config, points, mean, deviation)

    def observe(self, points):
        verdicts = []
        for point in points:
            # Learn from a few points before judging any.
            if self.points < 10 or self.deviation == 0:
                score = math.nan
            else:
                score = abs(point.value - self.mean) / self.deviation
            if self.points == 0:
                self.mean = point.value
            else:
                self.deviation = (1 - self.alpha) * self.deviation + self.alpha * abs(point.value - self.mean)
                self.mean = (1 - self.alpha) * self.mean + self.alpha * point.value
            self.points += 1
            verdicts.append(Verdict(point.timestamp_ms, score, score >= self.threshold))
        return verdicts

    def forecast(self, horizon_ms, threshold):
        return None

    def save(self):
        return STATE.pack(STATE_VERSION, self.points, self.mean, self.deviation)

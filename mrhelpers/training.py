"""The public path ``mrhelpers.training``: the same module object as :mod:`mrhelpers.authoring.training`."""

import sys

from mrhelpers.authoring import training

sys.modules[__name__] = training

"""The public path ``mrhelpers.components``: the same module object as :mod:`mrhelpers.authoring.components`."""

import sys

from mrhelpers.authoring import components

sys.modules[__name__] = components

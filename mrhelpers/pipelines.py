"""The public path ``mrhelpers.pipelines``: the same module object as :mod:`mrhelpers.authoring.pipelines`."""

import sys

from mrhelpers.authoring import pipelines

sys.modules[__name__] = pipelines

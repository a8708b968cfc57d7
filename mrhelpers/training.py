"""The public path ``mrhelpers.training``, as the notebooks and the README name it: the module itself is
:mod:`mrhelpers.authoring.training` (KFP authoring layer). Both names are one module object."""

import sys

from mrhelpers.authoring import training

sys.modules[__name__] = training

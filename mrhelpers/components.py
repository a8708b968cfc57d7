"""The public path ``mrhelpers.components``, as the notebooks and the README name it: the module itself is
:mod:`mrhelpers.authoring.components` (KFP authoring layer). Both names are one module object."""

import sys

from mrhelpers.authoring import components

sys.modules[__name__] = components

"""The public path ``mrhelpers.pipelines``, as the notebooks and the README name it: the module itself is
:mod:`mrhelpers.authoring.pipelines` (KFP authoring layer). Both names are one module object."""

import sys

from mrhelpers.authoring import pipelines

sys.modules[__name__] = pipelines

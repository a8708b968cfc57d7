"""KFP authoring: components, pipelines, compiling, runs; built on :mod:`mrhelpers.core`, blind to backends."""

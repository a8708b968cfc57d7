"""KFP authoring: components, pipelines, compiling, the run handle and the training code the components run.

Built on :mod:`mrhelpers.core`; it does not know which backend runs the pipelines.
"""

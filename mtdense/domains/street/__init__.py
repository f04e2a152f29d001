"""Street scenes: semantic segmentation + depth (CCAM, Semantics-Depth-Symbiosis).

The Cityscapes reader (disparity → depth from the camera JSON), the SYNTHETIC street-scene
generator that writes the Cityscapes layout, and the ``mtdense data synth-street`` verb.
"""

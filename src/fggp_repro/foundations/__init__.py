"""The ground every layer stands on: the errors a user can fix (`errors`), options that carry
their own ranges (`options`), the typed, frozen description of a run (`spec`), and atomic file
writes (`files`). It imports nothing else of the package, no torch and no Hydra.
"""

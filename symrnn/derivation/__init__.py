from .derive import Derivation, derive

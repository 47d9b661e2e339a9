"""The optimizer registry: every update rule fastnn knows, one ``Rule`` each (see
``rule``), its code its position in ``RULES``. A new rule is a module of its own beside
these and one line here; the CPU passes, the CUDA kernels and the Python class
(``fastnn.optimizers``) are made from the entry."""
from .adagrad import ADAGRAD, RMSPROP
from .adam import ADAM, ADAMW, HELPERS as _ADAM_HELPERS
from .lamb import LAMB
from .lion import LION
from .rule import SHARED, Hyperparameter, Rule
from .sgd import SGD

#: every rule, by code
RULES = (SGD, ADAGRAD, RMSPROP, ADAM, ADAMW, LAMB, LION)

#: scalar functions the rules call besides their own (compiled with them)
HELPERS = SHARED + _ADAM_HELPERS

__all__ = ["RULES", "HELPERS", "Rule", "Hyperparameter"]

"""The optimizer registry: every update rule fastnn knows, one ``Rule`` each (see
``rule``), its code its position in ``RULES``. A new rule is a module of its own beside
these and one line here; the CPU passes, the CUDA kernels and the Python class
(``fastnn.optimizers``) are made from the entry (a function a rule calls, such as
``adam.moments``, is compiled with it)."""
from .adagrad import ADAGRAD, RMSPROP
from .adam import ADAM, ADAMW
from .lamb import LAMB
from .lion import LION
from .rule import Hyperparameter, Rule
from .sgd import SGD

#: every rule, by code
RULES = (SGD, ADAGRAD, RMSPROP, ADAM, ADAMW, LAMB, LION)

__all__ = ["RULES", "Rule", "Hyperparameter"]

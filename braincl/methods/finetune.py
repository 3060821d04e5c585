"""``finetune``: train on each new task only, keep nothing. The lower bound."""

from ..learner import Learner
from ..registry import METHODS


@METHODS.register("finetune")
class Finetune(Learner):
    needs_budget = False

"""Byte-budgeted memory: the breakdown by kind, the budget check, and the stores methods share."""

from .budget import KINDS, Budget, BudgetExceeded, MemoryBreakdown, tensor_nbytes

__all__ = ["KINDS", "Budget", "BudgetExceeded", "MemoryBreakdown", "tensor_nbytes"]

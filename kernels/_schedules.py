"""Learning-rate schedules, evaluated from the update count t inside the compiled loop.

A schedule is a float64 vector (code, lr, a, b, c, scale); the rate in force for
update t (t = updates already made) is scale · rate(t) with

    inverse_time   lr / (1 + a t)                          a = decay (0: constant)
    step           lr · b^⌊t / a⌋                          a = step size, b = γ
    exponential    lr · a^t                                a = γ
    cosine         lr · t / b                  t < b       a = total steps,
                   c + (lr − c) (1 + cos(π (t − b)/(a − b)))/2   b ≤ t < a   b = warmup,
                   c                           t ≥ a       c = minimum rate

``scale`` (1 unless a callback such as ReduceLROnPlateau lowered it) multiplies any
schedule.
"""
import math

from ._jit import kernel

INVERSE_TIME, STEP, EXPONENTIAL, COSINE = range(4)
SCHEDULE_SIZE = 6


@kernel(entry=True)
def learning_rate(schedule, t):
    """The rate in force for update t (float64)."""
    code, lr, a, b, c = int(schedule[0]), schedule[1], schedule[2], schedule[3], schedule[4]
    if code == STEP:
        rate = lr * b ** (t // int(a))
    elif code == EXPONENTIAL:
        rate = lr * a ** t
    elif code == COSINE:
        if t < b:
            rate = lr * t / b
        elif t < a:
            rate = c + (lr - c) * 0.5 * (1.0 + math.cos(math.pi * (t - b) / (a - b)))
        else:
            rate = c
    else:
        rate = lr / (1.0 + a * t)
    return rate * schedule[5]

"""Models from saved files and arrays: fastnn.persistence reads and checks the file
format, fastnn.model builds the model (so that neither imports the other's caller)."""
from fastnn import persistence
from fastnn.model import Sequential


def load(path, *, device=None):
    """The model saved at ``path``, with ``model.optimizer`` (state, step count and
    schedule) and the shuffling generator restored: ``fit`` continues exactly where the
    saved model stopped. ``device`` overrides the saved device ("cpu" or "cuda").
    Raises FileNotFoundError for a missing file and ValueError naming the file for
    anything that is not an intact fastnn model file (truncated, corrupted, foreign, a
    newer format, pickled members)."""
    return persistence.load(path, Sequential._restored, device=device)


def model_from_arrays(arrays, *, device=None):
    """The model (with its optimizer and shuffling generator) whose members, as
    ``persistence.model_arrays`` gives them, are ``arrays``. Checked as ``load`` checks a
    file: anything inconsistent raises ValueError."""
    return persistence.model_from_arrays(arrays, Sequential._restored, device=device)

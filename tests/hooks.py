"""Hook functions that test configs name through lambda_callback (GYMNOS_CALLBACK_MODULES=tests.hooks)."""

import os
import time


def pause(epoch, logs):
    """Make each epoch last a while, so a test can watch (or stop) a run while it trains."""
    time.sleep(float(os.environ.get("GYMNOS_TEST_EPOCH_PAUSE", "0.4")))


def linger(logs):
    """Make the end of training last a while (after its last epoch), so a test can stop ``up`` right then.

    With GYMNOS_TEST_LINGER_MARK set, the file it names is made first: the sign a test waits for, instead of the
    database's row (whose last epoch can be written late on a loaded machine)."""
    mark = os.environ.get("GYMNOS_TEST_LINGER_MARK")
    if mark:
        open(mark, "w").close()
    time.sleep(float(os.environ.get("GYMNOS_TEST_END_PAUSE", "1.5")))


def breaks(epoch, logs):
    """A run's own failure: its training code raises at its second epoch's end."""
    if epoch == 1:
        raise RuntimeError("a bug in the run's own code")

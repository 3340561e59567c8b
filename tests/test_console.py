"""What ``manage.py up`` echoes from the web server's log: error records with their tracebacks, nothing else."""

from experiments.management.console import ErrorEcho

LOG = """\
2026-12-06 04:39:01,101 INFO experiments.web: Gymnos web process 4242 ready
[2026-12-06 04:39:02 +0000] [4242] [INFO] Booting worker with pid: 4243
2026-12-06 04:40:00,500 ERROR django.request: Internal Server Error: /experiments/x/
Traceback (most recent call last):
  File "views.py", line 9, in detail
ZeroDivisionError: division by zero
2026-12-06 04:40:01,000 WARNING django.request: Not Found: /nope/
[2026-12-06 04:41:00 +0000] [4242] [CRITICAL] WORKER TIMEOUT (pid:4243)
2026-12-06 04:41:01,000 INFO experiments.web: Gymnos web process 4244 ready
"""


def test_only_error_records_and_their_tracebacks_reach_the_console(tmp_path):
    path = tmp_path / "web.log"
    path.write_text("an old line from the last run\n")
    shown: list[str] = []
    echo = ErrorEcho(path, path.stat().st_size, shown.append)
    with open(path, "a") as log:
        log.write(LOG[:200])  # a record written in two parts: nothing is shown before its line ends
        log.flush()
        echo.poll()
        log.write(LOG[200:])
    echo.poll()
    assert "".join(shown) == (
        "2026-12-06 04:40:00,500 ERROR django.request: Internal Server Error: /experiments/x/\n"
        "Traceback (most recent call last):\n"
        '  File "views.py", line 9, in detail\n'
        "ZeroDivisionError: division by zero\n"
        "[2026-12-06 04:41:00 +0000] [4242] [CRITICAL] WORKER TIMEOUT (pid:4243)\n"
    )
    echo.poll()
    assert len(shown) == 5  # nothing new, nothing shown twice

"""A work horse that died is described by the signal that killed it; "out of memory" only where the kernel's
count of out-of-memory kills says so."""

import os
import signal

import pytest
import redis
from rq.job import Job

from experiments.jobs.deaths import VMSTAT, how_it_died, oom_kills
from experiments.jobs.tasks import on_horse_killed
from experiments.models import Execution, Experiment
from tests.workers import REDIS_URL


def status_of_a_child_that(dies):
    """The status ``wait`` returns for a real child process that ``dies()``."""
    pid = os.fork()
    if pid == 0:
        try:
            dies()
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1]


def killed_by(number):
    def dies():
        if number != signal.SIGKILL:  # whose action cannot be changed
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)

    return status_of_a_child_that(dies)


def test_a_crash_in_native_code_is_said_as_one_and_not_as_out_of_memory():
    said = how_it_died(killed_by(signal.SIGSEGV), oom_kills_at_fork=3, oom_kills_now=3)
    assert said == "its work horse died (signal 11 (SIGSEGV)): a crash in native code (an invalid memory access)"
    assert "memory" not in how_it_died(killed_by(signal.SIGABRT), 3, 3).split(": ", 1)[1].replace("memory access", "")


def test_a_sigkill_while_the_kernel_killed_nothing_for_memory_is_said_as_a_kill_from_outside():
    said = how_it_died(killed_by(signal.SIGKILL), oom_kills_at_fork=7, oom_kills_now=7)
    assert said.startswith("its work horse died (signal 9 (SIGKILL)): a kill from outside")
    assert "not the kernel's out-of-memory killer" in said


def test_a_sigkill_while_the_kernel_killed_for_memory_is_said_as_most_likely_that():
    said = how_it_died(killed_by(signal.SIGKILL), oom_kills_at_fork=7, oom_kills_now=9)
    assert said.startswith(
        "its work horse died (signal 9 (SIGKILL)): most likely the kernel's out-of-memory killer "
        "(it killed 2 processes on this machine while this work horse ran)"
    )


def test_a_sigkill_on_a_machine_that_does_not_count_memory_kills_says_both_causes():
    said = how_it_died(killed_by(signal.SIGKILL), oom_kills_at_fork=None, oom_kills_now=None)
    assert said == (
        "its work horse died (signal 9 (SIGKILL)): the kernel's out-of-memory killer or a kill "
        "(this machine does not count the former)"
    )


def test_a_terminate_signal_and_an_exit_are_said_as_what_they_are():
    assert how_it_died(killed_by(signal.SIGTERM), 0, 0) == (
        "its work horse died (signal 15 (SIGTERM)): stopped from outside (not a cancel, which ends a run cancelled)"
    )
    exited = status_of_a_child_that(lambda: os._exit(3))
    assert how_it_died(exited, 0, 0) == "its work horse died (exit status 3) without ending its run"


def test_the_kernels_count_of_memory_kills_is_read_where_it_is_kept(tmp_path):
    if os.path.exists(VMSTAT):
        assert isinstance(oom_kills(), int)
    vmstat = tmp_path / "vmstat"
    vmstat.write_text("nr_free_pages 12\noom_kill 42\npgfault 9\n")
    assert oom_kills(str(vmstat)) == 42
    vmstat.write_text("nr_free_pages 12\n")
    assert oom_kills(str(vmstat)) is None
    assert oom_kills(str(tmp_path / "absent")) is None


@pytest.mark.django_db
def test_a_run_whose_horse_crashed_fails_saying_so_and_not_out_of_memory(real_queues):
    experiment, _ = Experiment.objects.get_or_create(name="boston_housing")
    execution = Execution.objects.create(experiment=experiment, status="queued", job_id="execution-horse-test")
    Execution.objects.claim(execution.pk, "worker-1")
    job = Job.create("experiments.jobs.tasks.run_execution", args=(execution.pk,), id=execution.job_id,
                     connection=redis.Redis.from_url(REDIS_URL))  # fmt: skip
    on_horse_killed(job, killed_by(signal.SIGSEGV))
    execution.refresh_from_db()
    assert execution.status == "failed"
    assert execution.error == (
        "its work horse died (signal 11 (SIGSEGV)): a crash in native code (an invalid memory access)"
    )

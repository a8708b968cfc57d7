from mrhelpers.core.progress import Progress


def test_a_log_gets_only_the_start_and_the_end(capsys):
    with Progress("Waiting for the thing") as progress:
        for i in range(50):
            progress.update(f"step {i}")
        progress.done("ready")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0] == "Waiting for the thing ..." and lines[1].startswith("Waiting for the thing: ready (")


def test_a_failure_is_reported_and_quiet_prints_nothing(capsys):
    try:
        with Progress("Building"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert capsys.readouterr().out.splitlines()[-1].startswith("Building: failed (")
    with Progress("Silent", quiet=True) as progress:
        progress.update("x")
    assert capsys.readouterr().out == ""


def test_milestones_reach_plain_logs_and_updates_do_not(capsys):
    from mrhelpers.core.progress import Progress

    with Progress("Run r") as p:  # pytest's stdout is not a terminal: the "log" mode of CI
        p.update("RUNNING, 0 of 2 tasks finished")
        p.milestone("RUNNING, 1 of 2 tasks finished")
        p.update("RUNNING, 1 of 2 tasks finished")
        p.done("SUCCEEDED")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Run r ..." and "1 of 2 tasks finished" in lines[1] and len(lines) == 3
    assert lines[2].startswith("Run r: SUCCEEDED")

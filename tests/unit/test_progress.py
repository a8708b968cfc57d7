from mrhelpers.progress import Progress


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

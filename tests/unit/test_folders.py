"""The run folder reads each table once, hands out copies, and forgets a table it rewrites."""

import pandas as pd

from lens_relearn.study.folders import RunFolder


def test_a_table_is_read_once_copied_out_and_forgotten_when_rewritten(tmp_path, monkeypatch):
    folder = RunFolder(tmp_path)
    folder.write_table("primed", pd.DataFrame({"layer": [1, 2], "index": [3, 4]}))
    reads = []
    monkeypatch.setattr(pd, "read_csv", lambda path, read=pd.read_csv: reads.append(path) or read(path))

    first = folder.table("primed")
    first.loc[0, "layer"] = 99
    assert folder.table("primed").layer.tolist() == [1, 2], "a caller's change stays its own"
    assert len(reads) == 1

    folder.write_table("primed", pd.DataFrame({"layer": [5], "index": [6]}))
    assert folder.table("primed").layer.tolist() == [5]
    assert len(reads) == 2

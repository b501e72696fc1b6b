"""The ground floor of a study's files: where a study lives (a folder or an object store), its
lock, and the one reader and writer of Ray's on-disk trial records.

`study` (which runs studies) and `analysis` (which reads them) both stand on this package; it
imports neither of them, nor Ray, torch or trainables, so the analysis of a study never loads
the machinery that made it.
"""

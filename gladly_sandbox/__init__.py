"""A local Gladly organisation served over HTTP on loopback (arrives with issue 3)."""

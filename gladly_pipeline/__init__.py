"""The gladly-pipeline command line: parse, call the functions the flows call, print, exit."""

"""`refinery run PIPELINE.yaml`: the whole recipe (corpus -> tokenizer -> export -> mixture -> pretraining ->
alignment -> evaluation -> report) as one resumable chain of refinery commands, each writing its own folder.
spec.py reads the pipeline file, check.py checks every step before anything runs, runner.py runs and skips
steps, child.py runs one command (its output to the terminal and the step's log, its Ctrl-C waited for),
report.py writes the page that links them."""

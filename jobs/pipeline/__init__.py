"""`refinery run PIPELINE.yaml`: the whole recipe (corpus -> tokenizer -> export -> mixture -> pretraining ->
alignment -> evaluation -> report) as one resumable chain of refinery commands, each writing its own folder.
spec.py reads the pipeline file, runner.py runs and skips steps, report.py writes the page that links them."""

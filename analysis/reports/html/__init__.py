"""report.html: the page frame (page.py, assets/), analyses and comparisons, sweeps and load sweeps."""

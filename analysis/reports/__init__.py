"""What a person reads: summary.json, report.md, headline, tables, comparisons, gates, PNG plots, report.html."""

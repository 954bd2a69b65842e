"""Tables, figures and their comparison with the papers (verified classification, PROVEN, ensemble
robustness): report.catalog lists every output, report.paper_numbers holds the papers' printed
numbers, report.findings the findings each ``.compare.md`` decides."""

"""Tables and figures of the verified-classification paper, with comparisons to the paper."""

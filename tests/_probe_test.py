from test_soundness import *  # noqa
from test_soundness import CASES, NORMS, clip_loosenings, crown_ibp_violations

def test_probe(cases):
    for name in CASES:
        for norm in NORMS:
            print('VIOL', name, norm, crown_ibp_violations(cases[name], norm))
    for item in clip_loosenings(cases):
        print('CLIP', item)

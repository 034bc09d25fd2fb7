"""The README's backend support table is the one the backends' declarations produce."""
import os.path as osp

from svitt_mm.models.attention import backend_support_table

README = osp.join(osp.dirname(__file__), '..', '..', '..', 'README.md')


def test_readme_table_matches_the_declarations():
    text = open(README, encoding='utf-8').read()
    start, end = '<!-- backend support table: start -->\n', '\n<!-- backend support table: end -->'
    assert start in text and end in text, 'README lost the backend support table markers'
    table = text[text.index(start) + len(start):text.index(end)]
    assert table == backend_support_table(), ('README.md backend table is out of date; paste '
                                              'svitt_mm.models.attention.backend_support_table() between the markers')


def test_table_lists_every_backend_in_priority_order():
    rows = backend_support_table().splitlines()[2:]
    assert [row.split('|')[2].strip(' `') for row in rows] == ['triton', 'cpu_kernel', 'flex', 'gather']

"""Server-side SVG charts: labels escaped, values as French numbers, the data as a table too."""

from shared.web.charts import bar_chart, line_chart


def test_a_bar_chart_escapes_its_labels_and_writes_points_the_french_way() -> None:
    html = str(bar_chart("Bonus par lycée", [("Lycée <Voltaire> — Bac pro", 2500), ("Autre", 0)], unit=" pts"))
    assert "<Voltaire>" not in html and "&lt;Voltaire&gt;" in html
    assert "2\u202f500 pts" in html  # in the bar's value and in the table
    assert html.count("2\u202f500 pts") == 2
    assert "<table>" in html and 'aria-hidden="true"' in html


def test_an_empty_bar_chart_says_so() -> None:
    assert "Aucune donnée pour ces filtres." in str(bar_chart("Vide", []))


def test_a_line_chart_has_a_row_per_label_and_a_column_per_series() -> None:
    html = str(line_chart("Progression", ["5 mai", "12 mai"], [("Inscrits", [1, 4], "a"), ("Avis", [0, 2], "b")]))
    assert html.count("<polyline") == 2
    assert '<tr><th scope="row">12 mai</th><td>4</td><td>2</td></tr>' in html

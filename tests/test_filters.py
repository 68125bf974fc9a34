"""Filter bars: what was typed comes back escaped, with its error; selects mark the current choice."""

from __future__ import annotations

from app.filters import FilterBar, FilterField

BAR = FilterBar(
    FilterField("q", "Search", placeholder="words or INC-42", search=True, max_length=20),
    FilterField("status", "Status", kind="select", choices={"": "Any status", "open": "Open", "closed": "Closed"}),
    FilterField("tenant", "Tenant", kind="select"),
    FilterField("since", "From (UTC)", kind="datetime"),
)


def test_typed_values_come_back_escaped_with_their_errors():
    parsed = BAR.parse({"q": '"><script>x</script>', "status": "closed", "since": "yesterday"},
                       choices={"tenant": {"": "Any tenant"}})
    html = BAR.html(parsed)
    assert "<script>" not in html
    assert 'value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in html
    assert 'placeholder="words or INC-42"' in html and "data-search" in html
    assert '<option value="closed" selected>Closed</option>' in html
    assert '<div class="field has-error"><label for="since">' in html and "Use the form 2026-01-31T14:30." in html
    assert 'id="tenant"' not in html  # one choice only: nothing to choose
    assert parsed.errors.keys() == {"since"}


def test_choices_given_per_request_are_offered_and_checked():
    choices = {"tenant": {"": "Any tenant", "7": "Acme <EU>", "9": "Globex"}}
    parsed = BAR.parse({"tenant": "9"}, choices=choices)
    html = BAR.html(parsed)
    assert '<option value="9" selected>Globex</option>' in html and "Acme &lt;EU&gt;" in html
    assert parsed.values["tenant"] == "9"
    refused = BAR.parse({"tenant": "8"}, choices=choices)
    assert refused.errors == {"tenant": "Not one of the choices."}
    assert BAR.html(refused) != html and 'class="field has-error"' in BAR.html(refused)

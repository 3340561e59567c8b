"""A checkpoint's epoch read from its name with its ``filepath`` template, in one pass whatever the name.

The template comes from a run's config and the names from its folder: both are anyone's to write. A
regex of one lazy ``[^/]*?`` per field tried every way of splitting a name among the fields: a
100-character name took 5 seconds against ``{a}{b}{c}{d}{epoch}.h5``, and each more field
multiplied it.
"""

import string

from hypothesis import given
from hypothesis import strategies as st

from experiments.curation.prune import template_pattern
from tests.bounds import FUZZ, assert_quick

NAME_MAX = 255  # bytes in a file name: the longest one a folder can hold


def epoch_of(template, name):
    pattern = template_pattern(template)
    assert pattern is not None
    found = pattern.match(name)
    return None if found is None else int(found["epoch"])


def test_keras_templates_give_the_epoch_and_other_names_none():
    assert epoch_of("weights.{epoch:02d}-{val_loss:.2f}.h5", "weights.05-27.07.h5") == 5
    assert epoch_of("weights.{epoch:02d}-{val_loss:.2f}.h5", "weights.05-27.07.h5.bak") is None
    assert epoch_of("{val_loss:.2f}-{epoch}.h5", "-1.50-12.h5") == 12
    assert epoch_of("w.{epoch}.{loss}.{acc}.h5", "w.3.0.1.0.9.h5") == 3
    assert epoch_of("ckpt/{epoch}/model.h5", "ckpt/3/model.h5") == 3
    assert template_pattern("weights.h5") is None  # no epoch: every file is kept


TEMPLATES = ["{a}{b}{c}{d}{epoch}.h5", "{a}.{b}.{c}.{d}.{epoch}.h5", "{a}-{b}-{c}-{epoch}-{d}-{e}.h5",
             "{epoch}{a}{b}{c}x", "{a}.{epoch}{b}.{c}.h5", "{a}-{epoch}{b}-{c}{d}-{e}.h5"]  # fmt: skip
NAMES = ["1" * 250 + ".h6", "." * NAME_MAX, "-1" * 127, "1-" * 127, ".1" * 127, "1." * 127, "x" * NAME_MAX]


def test_no_name_of_the_longest_size_takes_long_against_any_template():
    def read_all(template):
        pattern = template_pattern(template)
        assert pattern is not None
        for name in NAMES:
            pattern.match(name)

    assert_quick(read_all, {template: template for template in TEMPLATES}, "weights.{epoch:02d}.h5")


PIECES = st.lists(st.sampled_from(["{epoch}", "{a}", "{b:.2f}", ".", "-", "_", "h5", "1"]), max_size=12)


@FUZZ
@given(PIECES, st.text(alphabet=".-_1h5a/", max_size=NAME_MAX))
def test_any_template_reads_any_name_quickly(pieces, name):
    pattern = template_pattern("".join(pieces))
    if pattern is not None:
        pattern.match(name)


@FUZZ
@given(
    st.text(alphabet=string.ascii_letters + "._", max_size=20),
    st.text(alphabet=string.ascii_letters + "._-", min_size=1, max_size=5),
    st.text(alphabet=string.ascii_letters + "._", max_size=10),
    st.integers(min_value=1, max_value=100_000),
    st.floats(allow_nan=False, width=32),
)
def test_a_name_keras_made_from_a_template_gives_back_its_epoch(prefix, between, suffix, epoch, loss):
    template = f"{prefix}{{epoch:02d}}{between}{{val_loss:.2f}}{suffix}"
    name = template.format(epoch=epoch, val_loss=loss)
    assert epoch_of(template, name) == epoch

"""svitt_mm.utils.text: caption cleaning and tokenizer loading shared by the data pipeline and the models."""
import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # before transformers / huggingface_hub are imported

import pytest  # noqa: E402

from svitt_mm.utils.text import clean_caption, load_tokenizer  # noqa: E402


@pytest.mark.parametrize('raw,clean', [
    ('A <PERSON> opens the fridge-door, then walks away!', 'a person opens the fridge door then walks away'),
    ('Someone "puts" (a) cup: on/off the table; ~*#?', 'someone puts a cup on off the table'),
    ("It's  a   dog.\n", 'its a dog'),
    ('  Moving   something - left/right  ', 'moving something left right'),
    ('already clean', 'already clean'),
])
def test_clean_caption(raw, clean):
    assert clean_caption(raw) == clean


def test_tokenizer_errors_name_the_setting_the_caller_gives(tmp_path):
    missing = str(tmp_path / 'no_tokenizer_here')
    with pytest.raises(OSError, match='no_tokenizer_here.*set model.tokenizer to a folder') as error:
        load_tokenizer(missing, 'model.tokenizer')
    assert 'TokenizeCaptions' not in str(error.value)


def test_uncached_hub_id_offline_names_the_setting():
    from huggingface_hub import constants
    if not constants.HF_HUB_OFFLINE:
        pytest.skip('huggingface_hub was imported before HF_HUB_OFFLINE=1 was set; would need network')
    with pytest.raises(OSError, match=r"'svitt-mm-test/no-such-tokenizer' \(set by model.tokenizer\).*"
                                      r'set model.tokenizer to DIR'):
        load_tokenizer('svitt-mm-test/no-such-tokenizer', 'model.tokenizer')

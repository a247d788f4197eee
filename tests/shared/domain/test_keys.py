from shared.domain.keys import KEY_PREFIX, display_form, generate_key, hash_key, mask_secret


def test_generated_keys_are_unique_prefixed_and_long() -> None:
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(k.startswith(KEY_PREFIX) and len(k) >= len(KEY_PREFIX) + 40 for k in keys)


def test_hash_is_sha256_hex_and_stable() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_display_and_mask_never_reveal_the_middle() -> None:
    key = generate_key()
    shown = display_form(key)
    assert key not in shown and shown.endswith(key[-4:])
    assert mask_secret("sk-1234567890abcdef0123456789") == "sk-1…6789"
    assert mask_secret("abcdefghijkl") == "****"  # too short to show any of it
    assert mask_secret("short") == "****"

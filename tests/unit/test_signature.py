"""Publishing's view of a model's inputs: --features forms and the parity sample."""

from __future__ import annotations

import numpy as np
import pytest

from chalicelib.manifest import ModelInput
from modelops.signature import (
    DEFAULT_INTEGER_BOUND,
    SAMPLE_ROWS,
    KerasInput,
    SignatureError,
    keras_inputs,
    map_features,
    parity_matrix,
)
from tests.unit.schema_fixtures import loan_spec

ONE = [KerasInput("input_layer", "float32", 3)]
TWO = [KerasInput("numbers", "float32", 2), KerasInput("codes", "int64", 1)]


def test_one_input_takes_a_flat_list_or_defaults() -> None:
    assert map_features(ONE, None, ["a", "b", "c"]) == (
        ["a", "b", "c"], (ModelInput("input_layer", "float32", ("a", "b", "c")),),
    )  # fmt: skip
    assert map_features(ONE, None, None)[0] == ["x0", "x1", "x2"]


def test_one_input_with_preprocessing_takes_its_encoded_order() -> None:
    spec = loan_spec()
    width = len(spec.encoded_features())
    encoded, inputs = map_features([KerasInput("x", "float32", width)], spec, None)
    assert encoded == spec.encoded_features() and inputs[0].features == tuple(encoded)


def test_several_inputs_take_one_list_per_input_and_keep_the_models_order() -> None:
    encoded, inputs = map_features(TWO, None, {"codes": ["region"], "numbers": ["a", "b"]})
    assert encoded == ["a", "b", "region"]
    assert inputs == (ModelInput("numbers", "float32", ("a", "b")),
                      ModelInput("codes", "int64", ("region",)))  # fmt: skip
    assert map_features(TWO, None, None)[0] == ["numbers_0", "numbers_1", "codes_0"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["a", "b", "c"], r"the model has 2 inputs \(numbers, codes\): give --features as"),
        ({"numbers": ["a", "b"]}, r"lacks \['codes'\]; the model's inputs are numbers, codes"),
        ({"numbers": ["a", "b"], "codes": ["c"], "extra": []}, r"\['extra'\] the model does not"),
        ({"numbers": ["a"], "codes": ["c"]}, "input 'numbers' takes 2 features but 1"),
        ({"numbers": "ab", "codes": ["c"]}, "--features for input 'numbers' must be a list"),
    ],
)
def test_features_that_do_not_fit_are_refused(names: object, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        map_features(TWO, None, names)  # type: ignore[arg-type]


def test_integer_features_are_sampled_as_small_whole_numbers() -> None:
    encoded, inputs = map_features(TWO, None, None)
    given = np.array([[0.5, -1.0, 7.0]])
    sample = parity_matrix(object(), encoded, inputs, None, given)  # no layers: default bound
    assert sample.shape == (1 + SAMPLE_ROWS, 3) and sample[0].tolist() == [0.5, -1.0, 7.0]
    codes = sample[1:, 2]
    assert set(codes.tolist()) == set(range(DEFAULT_INTEGER_BOUND))
    assert np.all(sample[1:, :2] == sample[1:, :2].astype(np.float32))  # exact as float32


SEQ = KerasInput("seq", "float32", 40, (10, 4))


def test_a_sequence_input_takes_one_field_named_like_it_with_its_shape() -> None:
    assert map_features([SEQ], None, None) == (
        ["seq"], (ModelInput("seq", "float32", ("seq",), shape=(10, 4)),),
    )  # fmt: skip
    encoded, inputs = map_features([SEQ, ONE[0]], None, ["a", "b", "c"])  # the flat one's
    assert encoded == ["seq", "a", "b", "c"] and inputs[1].features == ("a", "b", "c")
    sample = parity_matrix(None, encoded, inputs, None, None)
    assert sample.shape == (SAMPLE_ROWS, 43)


def test_a_sequence_input_refuses_preprocessing_and_ambiguous_flat_names() -> None:
    with pytest.raises(SignatureError, match="without --preprocessing"):
        map_features([SEQ], loan_spec(), None)
    with pytest.raises(SignatureError, match=r"seq \[10, 4\] take nested lists"):
        map_features([SEQ], None, ["a"])
    assert map_features([SEQ], None, ["seq"])[0] == ["seq"]  # the field, named like the input


def test_an_input_without_a_fixed_record_shape_says_how_to_give_one() -> None:
    import keras

    model = keras.Model(given := keras.Input((None, 4), name="steps"), given)
    with pytest.raises(SignatureError, match=r"give every dimension but the first a size"):
        keras_inputs(model)
    seq = keras.Input((10, 4), name="seq")
    assert keras_inputs(keras.Model(seq, seq)) == [SEQ]

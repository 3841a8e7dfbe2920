import pytest

import pcn.data


@pytest.fixture(scope="session")
def fashion_mnist_available() -> None:
    """Skip (with the fix in the reason) where Fashion-MNIST is not installed."""
    try:
        pcn.data.load("fashion-mnist", download=False)
    except pcn.data.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST not found: apt-get install -y dataset-fashion-mnist")

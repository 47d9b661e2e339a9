"""fastnn.MLPClassifier beside scikit-learn's MLPClassifier on the digits data (the
fit-time ratio is the figure: scripts/sklearn_swap.py). Needs scikit-learn."""
import warnings


class DigitsFit:
    timeout = 300
    params = ["fastnn", "scikit-learn"]
    param_names = ["estimator"]

    def setup(self, estimator):
        from sklearn.datasets import load_digits
        from sklearn.preprocessing import StandardScaler

        X, self.y = load_digits(return_X_y=True)
        self.X = StandardScaler().fit_transform(X)
        if estimator == "fastnn":
            import fastnn

            self.cls = fastnn.MLPClassifier
            self.cls(max_iter=1).fit(self.X[:50], self.y[:50])   # kernels compiled (cached)
        else:
            from sklearn.neural_network import MLPClassifier

            self.cls = MLPClassifier

    def time_fit_50_epochs(self, estimator):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.cls(max_iter=50, random_state=0).fit(self.X, self.y)

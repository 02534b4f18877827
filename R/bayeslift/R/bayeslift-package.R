#' bayeslift: a Bayesian causal model of spend uplift
#'
#' Build a feature spec ([feature_spec()] or [read_feature_spec()]), fit the model ([fit_causal_model()],
#' or the candidates a config's `model` section describes with [fit_candidates()] / [fit_configured_model()]),
#' and get counterfactual draws for both arms ([counterfactual_draws()], [export_counterfactuals()]).
#'
#' Back-ends are S3 classes: each is one file of methods for the generics listed in [expected_outcome()]
#' and registered in [backend_fitter()].
#'
#' @keywords internal
#' @importFrom splines ns
"_PACKAGE"

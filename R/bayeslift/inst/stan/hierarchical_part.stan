// One part of bayeslift's hierarchical causal model (back-end "stan"): a logistic or Gaussian GLM in which
// the arm's average effect has its own prior on the outcome's scale and the effect's variation across users
// (arm x feature terms, arm x smooth terms) is shrunk toward zero with scales learned from the data, so a
// homogeneous effect is what the data must overturn. Columns arrive standardized; the effect columns are
// centred on the part's users before they are multiplied by the arm, so `tau` is the average effect on the
// link scale.
data {
  int<lower=1> N;
  int<lower=0, upper=1> gaussian;   // 0: logistic (y is 0/1), 1: normal
  vector[N] y;
  vector[N] arm;                    // 1 = treated; all 0 for the no-effect model
  int<lower=0> K;
  matrix[N, K] X;                   // baseline: linear columns
  int<lower=0> L;
  matrix[N, L] B;                   // baseline: smooth deviations from linear
  int<lower=0> J;
  matrix[N, J] Z;                   // effect: linear columns x arm
  int<lower=0> M;
  matrix[N, M] S;                   // effect: smooth deviations x arm
  real y_loc;                       // prior location of the intercept
  real<lower=0> y_scale;            // the outcome's scale (1 on the logit scale)
}
transformed data {
  matrix[N, 1 + K + L + J + M] W = append_col(append_col(append_col(append_col(arm, X), B), Z), S);
  int y01[gaussian ? 0 : N];
  if (!gaussian) for (n in 1:N) y01[n] = y[n] > 0.5;
}
parameters {
  real alpha;
  real tau_z;
  vector[K] beta_z;
  vector[L] theta_z;
  vector[J] gamma_z;
  vector[M] delta_z;
  real<lower=0> lambda_baseline_smooth;
  real<lower=0> lambda_effect;
  real<lower=0> lambda_effect_smooth;
  real<lower=0> sigma[gaussian];
}
transformed parameters {
  // Non-centred: the shrunk terms are scale x standard normal, which samples well when the data say little.
  vector[1 + K + L + J + M] coef = append_row(append_row(append_row(append_row(
    rep_vector(y_scale * tau_z, 1), 2.5 * y_scale * beta_z), lambda_baseline_smooth * theta_z),
    lambda_effect * gamma_z), lambda_effect_smooth * delta_z);
}
model {
  alpha ~ normal(y_loc, 2.5 * y_scale);
  tau_z ~ std_normal();             // average effect ~ normal(0, y_scale)
  beta_z ~ std_normal();
  theta_z ~ std_normal();
  gamma_z ~ std_normal();
  delta_z ~ std_normal();
  lambda_baseline_smooth ~ normal(0, y_scale);
  lambda_effect ~ normal(0, 0.5 * y_scale);
  lambda_effect_smooth ~ normal(0, 0.5 * y_scale);
  sigma ~ exponential(1 / y_scale);
  if (gaussian) y ~ normal_id_glm(W, alpha, coef, sigma[1]);
  else y01 ~ bernoulli_logit_glm(W, alpha, coef);
}

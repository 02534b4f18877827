// One part of bayeslift's hierarchical causal model (back-end "stan"): a logistic or Gaussian GLM in which
// each campaign arm's average effect has its own prior on the outcome's scale and the effect's variation across
// users (arm x feature terms, arm x smooth terms) is shrunk toward zero with scales learned from the data, so a
// homogeneous effect is what the data must overturn. With several campaign arms (A > 1) each arm's terms are a
// part shared by every arm plus the arm's own deviation, both scales learned: the arms' heterogeneity is
// partially pooled. Columns arrive standardized; the effect columns are centred on the part's users before
// they are multiplied by an arm's indicator, so `tau[a]` is arm a's average effect on the link scale. With one
// arm the parameters, and so the draws, are those of the one-arm program this generalizes.
data {
  int<lower=1> N;
  int<lower=0, upper=1> gaussian;   // 0: logistic (y is 0/1), 1: normal
  vector[N] y;
  int<lower=1> A;                   // campaign arms (the control arm has no column)
  matrix[N, A] arm;                 // 1 = in that campaign arm; all 0 for the no-effect model
  int<lower=0> K;
  matrix[N, K] X;                   // baseline: linear columns
  int<lower=0> L;
  matrix[N, L] B;                   // baseline: smooth deviations from linear
  int<lower=0> J;
  matrix[N, A * J] Z;               // effect: linear columns x arm indicator, arm after arm
  int<lower=0> M;
  matrix[N, A * M] S;               // effect: smooth deviations x arm indicator, arm after arm
  real y_loc;                       // prior location of the intercept
  real<lower=0> y_scale;            // the outcome's scale (1 on the logit scale)
}
transformed data {
  matrix[N, A + K + L + A * J + A * M] W = append_col(append_col(append_col(append_col(arm, X), B), Z), S);
  int y01[gaussian ? 0 : N];
  int P = A > 1 ? A : 0;            // arms with their own deviation (none with one arm)
  if (!gaussian) for (n in 1:N) y01[n] = y[n] > 0.5;
}
parameters {
  real alpha;
  vector[A] tau_z;
  vector[K] beta_z;
  vector[L] theta_z;
  vector[J] gamma_z;                // shared by every arm
  vector[M] delta_z;
  real<lower=0> lambda_baseline_smooth;
  real<lower=0> lambda_effect;
  real<lower=0> lambda_effect_smooth;
  real<lower=0> sigma[gaussian];
  matrix[P, J] gamma_arm_z;         // each arm's own deviation
  matrix[P, M] delta_arm_z;
  real<lower=0> lambda_arm[P > 0];
  real<lower=0> lambda_arm_smooth[P > 0];
}
transformed parameters {
  // Non-centred: the shrunk terms are scale x standard normal, which samples well when the data say little.
  vector[A + K + L + A * J + A * M] coef;
  {
    vector[A * J] gamma;
    vector[A * M] delta;
    if (A == 1) {
      gamma = lambda_effect * gamma_z;
      delta = lambda_effect_smooth * delta_z;
    } else {
      for (a in 1:A) {
        gamma[((a - 1) * J + 1):(a * J)] = lambda_effect * gamma_z + lambda_arm[1] * gamma_arm_z[a]';
        delta[((a - 1) * M + 1):(a * M)] = lambda_effect_smooth * delta_z + lambda_arm_smooth[1] * delta_arm_z[a]';
      }
    }
    coef = append_row(append_row(append_row(append_row(
      y_scale * tau_z, 2.5 * y_scale * beta_z), lambda_baseline_smooth * theta_z), gamma), delta);
  }
}
model {
  alpha ~ normal(y_loc, 2.5 * y_scale);
  tau_z ~ std_normal();             // each arm's average effect ~ normal(0, y_scale)
  beta_z ~ std_normal();
  theta_z ~ std_normal();
  gamma_z ~ std_normal();
  delta_z ~ std_normal();
  lambda_baseline_smooth ~ normal(0, y_scale);
  lambda_effect ~ normal(0, 0.5 * y_scale);
  lambda_effect_smooth ~ normal(0, 0.5 * y_scale);
  sigma ~ exponential(1 / y_scale);
  to_vector(gamma_arm_z) ~ std_normal();
  to_vector(delta_arm_z) ~ std_normal();
  lambda_arm ~ normal(0, 0.5 * y_scale);
  lambda_arm_smooth ~ normal(0, 0.5 * y_scale);
  if (gaussian) y ~ normal_id_glm(W, alpha, coef, sigma[1]);
  else y01 ~ bernoulli_logit_glm(W, alpha, coef);
}

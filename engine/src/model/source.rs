//! Where a model's parameters come from: a checkpoint, or torchvision's random initialization.
//! The model is built by one function that asks a [`ParamSource`] for each tensor by its
//! torchvision name, so loading and initializing cannot drift apart.

use burn::tensor::{Device, Distribution, Tensor, TensorData};

use crate::checkpoint::StateDict;
use crate::error::Error;

pub trait ParamSource {
    /// A convolution weight `[out, in / groups, k, k]`.
    fn conv(&mut self, key: &str, shape: [usize; 4]) -> Result<Tensor<4>, Error>;
    /// A per-channel vector of `len` values; a fresh layer holds `default` everywhere.
    fn vector(&mut self, key: &str, len: usize, default: f32) -> Result<Tensor<1>, Error>;
    /// A fully connected layer stored as torch does (`{key}.weight` `[d_out, d_in]`,
    /// `{key}.bias` `[d_out]`); returns burn's layout, weight `[d_in, d_out]` and bias.
    fn linear(&mut self, key: &str, d_in: usize, d_out: usize) -> Result<(Tensor<2>, Tensor<1>), Error>;
}

/// Parameters read from a checkpoint; every shape is checked and named in errors. `used`
/// collects the keys read, in order.
pub struct Weights<'a> {
    pub state: &'a StateDict,
    pub device: Device,
    pub used: Vec<String>,
}

impl Weights<'_> {
    fn get(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f32>, Error> {
        self.used.push(key.to_owned());
        self.state.get(key, shape).map(|t| t.data.clone())
    }
}

impl ParamSource for Weights<'_> {
    fn conv(&mut self, key: &str, shape: [usize; 4]) -> Result<Tensor<4>, Error> {
        Ok(Tensor::from_data(TensorData::new(self.get(key, &shape)?, shape), &self.device))
    }

    fn vector(&mut self, key: &str, len: usize, _default: f32) -> Result<Tensor<1>, Error> {
        Ok(Tensor::from_data(TensorData::new(self.get(key, &[len])?, [len]), &self.device))
    }

    fn linear(&mut self, key: &str, d_in: usize, d_out: usize) -> Result<(Tensor<2>, Tensor<1>), Error> {
        let w = self.get(&format!("{key}.weight"), &[d_out, d_in])?;
        let b = self.get(&format!("{key}.bias"), &[d_out])?;
        // torch stores [d_out, d_in]; burn's Linear multiplies by [d_in, d_out].
        let mut t = vec![0.0; w.len()];
        for o in 0..d_out {
            for i in 0..d_in {
                t[i * d_out + o] = w[o * d_in + i];
            }
        }
        Ok((
            Tensor::from_data(TensorData::new(t, [d_in, d_out]), &self.device),
            Tensor::from_data(TensorData::new(b, [d_out]), &self.device),
        ))
    }
}

/// torchvision's initialization: Kaiming-normal (fan-out, ReLU gain) convolutions, batch
/// norms at identity, PyTorch's default uniform for the classifier. Seeded through the device.
pub struct RandomInit {
    pub device: Device,
}

impl RandomInit {
    pub fn new(device: &Device, seed: u64) -> Self {
        device.seed(seed);
        RandomInit { device: device.clone() }
    }
}

impl ParamSource for RandomInit {
    fn conv(&mut self, _key: &str, shape: [usize; 4]) -> Result<Tensor<4>, Error> {
        let fan_out = (shape[0] * shape[2] * shape[3]) as f64;
        Ok(Tensor::random(shape, Distribution::Normal(0.0, (2.0 / fan_out).sqrt()), &self.device))
    }

    fn vector(&mut self, _key: &str, len: usize, default: f32) -> Result<Tensor<1>, Error> {
        Ok(Tensor::full([len], default, &self.device))
    }

    fn linear(&mut self, _key: &str, d_in: usize, d_out: usize) -> Result<(Tensor<2>, Tensor<1>), Error> {
        let bound = 1.0 / (d_in as f64).sqrt();
        let dist = Distribution::Uniform(-bound, bound);
        Ok((Tensor::random([d_in, d_out], dist, &self.device), Tensor::random([d_out], dist, &self.device)))
    }
}

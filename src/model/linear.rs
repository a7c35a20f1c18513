//! transformers' `nn.Linear`, `x · W + b`: burn's Linear, whose weight the CPU packs at load.
//!
//! The fields and key names are burn's `Linear`'s (`weight` `[d_in, d_out]`, `bias`), so the
//! loaders fill it as they fill that one. On the CPU, [`Linear::pack`] then moves the weight
//! into the form the CPU's matrix product reads ([`PackedLinear`]): packed once, not on every
//! call, and not kept twice: `weight` is left empty (`[0, d_out]`) and the packed form is
//! what the layer computes with. On a GPU nothing changes. Which product runs is
//! [`crate::kernels::linear`]'s business.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::nn::LinearConfig;
use burn::tensor::{DType, Device, Tensor};

use crate::kernels::{self, Activation, cpu::PackedLinear};
use crate::weights::HostWeights;

#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
    /// The weight (and bias) packed for the CPU; shared by clones of the model.
    #[module(skip)]
    pub packed: Option<Arc<PackedLinear>>,
}

impl Linear {
    /// Lazily initialised, as burn's (nothing is allocated until a loader fills it).
    pub fn new(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Self {
        let linear = LinearConfig::new(d_in, d_out).with_bias(bias).init(device);
        Self { weight: linear.weight, bias: linear.bias, packed: None }
    }

    /// `x · W + b` over the last dimension of `x`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        let d_in = dims[D - 1];
        let rows = x.shape().num_elements() / d_in.max(1);
        let out = kernels::linear(x.reshape([1, rows, d_in]), self, Activation::None);
        let mut out_dims = dims;
        out_dims[D - 1] = out.dims()[2];
        out.reshape(out_dims)
    }

    /// On the CPU, the weight moved into its packed form (see the module's doc); elsewhere,
    /// and for weights the CPU's product does not take (f16 kept as f16), nothing changes.
    pub fn pack(&mut self) {
        self.pack_from(&mut HostWeights::new());
    }

    /// [`Self::pack`], where `host` may hold this layer's 8-bit weight, which a loader kept
    /// out of the module for the CPU's 8-bit product (wasm only): it is taken from there.
    pub(crate) fn pack_from(&mut self, host: &mut HostWeights) {
        let weight = self.weight.val();
        let device = weight.device();
        let bias = || {
            let bias = self.bias.as_ref().map(|b| b.val().into_data().convert::<f32>().try_to_vec::<f32>());
            bias.map(|b| b.expect("an f32 bias"))
        };
        #[cfg(target_family = "wasm")]
        if let Some(matrix) = host.remove(&self.weight.id) {
            self.packed = Some(Arc::new(PackedLinear::q8(matrix, bias())));
            return;
        }
        #[cfg(not(target_family = "wasm"))]
        let _ = host; // natively 8-bit weights are widened at load, never kept on the host
        if self.packed.is_some() || kernels::on_gpu(&device) || weight.dtype() != DType::F32 || !kernels::uses("linear")
        {
            return;
        }
        let [d_in, d_out] = weight.dims();
        let bias = bias();
        // The parameter let go first, so `weight` holds the only reference: its buffer is taken
        // without a copy (and in wasm packed in place).
        self.weight = Param::initialized(self.weight.id, Tensor::empty([0, d_out], &device));
        let values = weight.into_data().convert::<f32>().try_into_vec::<f32>().expect("an f32 weight");
        self.packed = Some(Arc::new(PackedLinear::new(values, d_in, d_out, bias)));
    }

    /// `[d_in, d_out]`, packed or not.
    pub fn dims(&self) -> [usize; 2] {
        match &self.packed {
            Some(p) => [p.d_in(), p.d_out()],
            None => self.weight.val().dims(),
        }
    }
}

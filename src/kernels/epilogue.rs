//! What a Linear layer does to its product before writing it: the bias, an activation, a
//! residual. Shared by the GPU's kernel (a comptime choice there) and the CPU's products.

/// What is done to the product before it is written (comptime: one pipeline each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epilogue {
    pub bias: bool,
    pub activation: Activation,
    pub residual: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    None,
    /// CLIP's `quick_gelu`: `x · σ(1.702 x)`.
    QuickGelu,
    /// The exact (erf) GELU, transformers' `gelu`.
    Gelu,
}

impl Epilogue {
    /// Packed into the integer the fused operation carries.
    pub fn code(self) -> u32 {
        let act = match self.activation {
            Activation::None => 0,
            Activation::QuickGelu => 1,
            Activation::Gelu => 2,
        };
        u32::from(self.bias) | (u32::from(self.residual) << 1) | (act << 2)
    }

    pub fn from_code(code: u32) -> Self {
        let activation = match code >> 2 {
            1 => Activation::QuickGelu,
            2 => Activation::Gelu,
            _ => Activation::None,
        };
        Self { bias: code & 1 == 1, activation, residual: code & 2 == 2 }
    }
}

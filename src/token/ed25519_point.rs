//! Which 32-byte strings mfa-gate takes as Ed25519 public keys (RFC 8032 §5.1.3): a canonical
//! encoding (y below p = 2^255 - 19), of a point on the curve, and not one of the eight
//! points of small order. ring's verifier checks none of these at key load, and accepts
//! small-order keys, for which anyone can forge a signature: a JWKS or a DPoP proof `jwk`
//! holding one is refused here, once, when the key is read.
//!
//! The curve test is Euler's criterion on x^2 = (y^2 - 1) / (d·y^2 + 1) in GF(p), with a
//! small variable-time field arithmetic over public values only. It signs and verifies
//! nothing; ring does that.

/// The field element `p = 2^255 - 19`, as four little-endian 64-bit limbs.
const P: Fe = Fe([
    0xffff_ffff_ffff_ffed,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_ffff_ffff,
    0x7fff_ffff_ffff_ffff,
]);

/// The curve constant `d = -121665 / 121666 mod p` (RFC 8032 §5.1).
const D: Fe = Fe([
    0x75eb_4dca_1359_78a3,
    0x0070_0a4d_4141_d8ab,
    0x8cc7_4079_7779_e898,
    0x5203_6cee_2b6f_fe73,
]);

/// `(p - 1) / 2`, the exponent of Euler's criterion.
const HALF_P_MINUS_ONE: Fe = Fe([
    0xffff_ffff_ffff_fff6,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_ffff_ffff,
    0x3fff_ffff_ffff_ffff,
]);

/// The y coordinates of the points of small order (the 8-torsion subgroup): the identity
/// (y = 1), the point of order 2 (y = p - 1), the two of order 4 (y = 0) and the four of
/// order 8 (y = ±y8). The sign bit of x does not change the order, so it is ignored.
const SMALL_ORDER_Y: [Fe; 5] = [
    Fe([0, 0, 0, 0]),
    Fe([1, 0, 0, 0]),
    Fe([
        0xffff_ffff_ffff_ffec,
        0xffff_ffff_ffff_ffff,
        0xffff_ffff_ffff_ffff,
        0x7fff_ffff_ffff_ffff,
    ]),
    Fe([
        0xb027_b2c2_8f95_e826,
        0xf098_eff2_89f4_c345,
        0x3933_c6d3_05ac_dfd5,
        0x05fc_536d_8802_38b1,
    ]),
    Fe([
        0x4fd8_4d3d_706a_17c7,
        0x0f67_100d_760b_3cba,
        0xc6cc_392c_fa53_202a,
        0x7a03_ac92_77fd_c74e,
    ]),
];

/// Why 32 bytes are not a usable Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadPoint {
    /// y is p or more: a second spelling of another key.
    NonCanonical,
    /// No x satisfies the curve equation for this y.
    NotOnCurve,
    /// A point of order 1, 2, 4 or 8: signatures "verify" without the private key.
    SmallOrder,
}

impl BadPoint {
    /// Why, for a skipped key's reason.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            BadPoint::NonCanonical => {
                "Ed25519 key is not canonically encoded (y is not below 2^255-19)"
            }
            BadPoint::NotOnCurve => "Ed25519 key is not a point of the curve",
            BadPoint::SmallOrder => {
                "Ed25519 key is a point of small order (signatures could be forged)"
            }
        }
    }
}

/// Checks an encoded Ed25519 public key (RFC 8032 §5.1.2: y little-endian, x's sign in the
/// top bit).
pub(crate) fn check_public_key(encoded: &[u8; 32]) -> Result<(), BadPoint> {
    let mut y_bytes = *encoded;
    y_bytes[31] &= 0x7f;
    let y = Fe::from_le_bytes(&y_bytes);
    if !y.less_than(&P) {
        return Err(BadPoint::NonCanonical);
    }
    if SMALL_ORDER_Y.contains(&y) {
        return Err(BadPoint::SmallOrder);
    }
    // x^2 = u / v with u = y^2 - 1, v = d·y^2 + 1 (v is never 0: -1/d is not a square).
    // u / v is a square exactly when u·v is (they differ by the square v^2).
    let y2 = y.mul(&y);
    let u = y2.sub(&Fe::ONE);
    let v = D.mul(&y2).add(&Fe::ONE);
    if is_square(&u.mul(&v)) {
        Ok(())
    } else {
        Err(BadPoint::NotOnCurve)
    }
}

/// Euler's criterion: `a` is a square mod p when it is 0 or `a^((p-1)/2) = 1`.
fn is_square(a: &Fe) -> bool {
    *a == Fe::ZERO || a.pow(&HALF_P_MINUS_ONE) == Fe::ONE
}

/// An element of GF(2^255 - 19), always fully reduced (below p), as little-endian limbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fe([u64; 4]);

impl Fe {
    const ZERO: Fe = Fe([0, 0, 0, 0]);
    const ONE: Fe = Fe([1, 0, 0, 0]);

    fn from_le_bytes(bytes: &[u8; 32]) -> Fe {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(word);
        }
        Fe(limbs)
    }

    fn less_than(&self, other: &Fe) -> bool {
        for i in (0..4).rev() {
            if self.0[i] != other.0[i] {
                return self.0[i] < other.0[i];
            }
        }
        false
    }

    /// `self - other` as 256-bit integers, and whether it borrowed.
    fn raw_sub(&self, other: &Fe) -> (Fe, bool) {
        let mut out = [0u64; 4];
        let mut borrow = false;
        for (i, limb) in out.iter_mut().enumerate() {
            let (d1, b1) = self.0[i].overflowing_sub(other.0[i]);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *limb = d2;
            borrow = b1 || b2;
        }
        (Fe(out), borrow)
    }

    /// Brings a value below 2^256 under p (at most two subtractions: 2^256 < 3p).
    fn reduce(mut self) -> Fe {
        while !self.less_than(&P) {
            self = self.raw_sub(&P).0;
        }
        self
    }

    fn add(&self, other: &Fe) -> Fe {
        let mut out = [0u64; 4];
        let mut carry = 0u128;
        for (i, limb) in out.iter_mut().enumerate() {
            let sum = u128::from(self.0[i]) + u128::from(other.0[i]) + carry;
            *limb = sum as u64;
            carry = sum >> 64;
        }
        // Both inputs are below p < 2^255, so the sum fits 256 bits: no carry out.
        Fe(out).reduce()
    }

    fn sub(&self, other: &Fe) -> Fe {
        let (difference, borrowed) = self.raw_sub(other);
        if borrowed {
            // self - other + p, computed as (self + p) - other without leaving 256 bits:
            // the wrapped difference plus p wraps back.
            let mut out = [0u64; 4];
            let mut carry = 0u128;
            for (i, limb) in out.iter_mut().enumerate() {
                let sum = u128::from(difference.0[i]) + u128::from(P.0[i]) + carry;
                *limb = sum as u64;
                carry = sum >> 64;
            }
            Fe(out)
        } else {
            difference
        }
    }

    fn mul(&self, other: &Fe) -> Fe {
        let mut wide = [0u64; 8];
        for i in 0..4 {
            let mut carry = 0u128;
            for j in 0..4 {
                let t = u128::from(wide[i + j])
                    + u128::from(self.0[i]) * u128::from(other.0[j])
                    + carry;
                wide[i + j] = t as u64;
                carry = t >> 64;
            }
            wide[i + 4] = carry as u64;
        }
        // 2^256 = 38 (mod p): fold the high half onto the low half, twice.
        let mut out = [0u64; 4];
        let mut carry = 0u128;
        for (i, limb) in out.iter_mut().enumerate() {
            let t = u128::from(wide[i]) + u128::from(wide[i + 4]) * 38 + carry;
            *limb = t as u64;
            carry = t >> 64;
        }
        let mut extra = carry * 38;
        for limb in out.iter_mut() {
            if extra == 0 {
                break;
            }
            let t = u128::from(*limb) + extra;
            *limb = t as u64;
            extra = t >> 64;
        }
        if extra != 0 {
            // The fold carried out of 256 bits once more: the rest is now tiny.
            let t = u128::from(out[0]) + 38;
            out[0] = t as u64;
            let mut c = t >> 64;
            for limb in out.iter_mut().skip(1) {
                if c == 0 {
                    break;
                }
                let t = u128::from(*limb) + c;
                *limb = t as u64;
                c = t >> 64;
            }
        }
        Fe(out).reduce()
    }

    /// `self^exponent`, square-and-multiply from the top bit (variable time: public values).
    fn pow(&self, exponent: &Fe) -> Fe {
        let mut result = Fe::ONE;
        for i in (0..4).rev() {
            for bit in (0..64).rev() {
                result = result.mul(&result);
                if (exponent.0[i] >> bit) & 1 == 1 {
                    result = result.mul(self);
                }
            }
        }
        result
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn small(n: u64) -> Fe {
        Fe([n, 0, 0, 0])
    }

    fn encode(y: &Fe, x_negative: bool) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(y.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        if x_negative {
            out[31] |= 0x80;
        }
        out
    }

    #[test]
    fn field_arithmetic_agrees_with_the_curve_constants() {
        // d·121666 = -121665, i.e. d·121666 + 121665 = 0 (mod p).
        assert_eq!(D.mul(&small(121_666)).add(&small(121_665)), Fe::ZERO);
        // p - 1 = -1: (-1)·(-1) = 1, and -1 + 1 = 0.
        let minus_one = SMALL_ORDER_Y[2];
        assert_eq!(minus_one.mul(&minus_one), Fe::ONE);
        assert_eq!(minus_one.add(&Fe::ONE), Fe::ZERO);
        assert_eq!(Fe::ZERO.sub(&Fe::ONE), minus_one);
        // Fermat: a^(p-1) = 1; -1 is a square (p = 1 mod 4), 2 is not (p = 5 mod 8).
        let a = Fe([0x1234_5678_9abc_def0, 7, 0xdead_beef, 0x0123_4567]);
        assert_eq!(a.pow(&HALF_P_MINUS_ONE).pow(&small(2)), Fe::ONE);
        assert!(is_square(&minus_one));
        assert!(!is_square(&small(2)));
        assert!(is_square(&small(4)));
        // Multiplying the largest elements folds twice.
        assert_eq!(minus_one.mul(&minus_one.mul(&minus_one)), minus_one);
    }

    #[test]
    fn the_order_eight_points_are_on_the_curve() {
        // For y = ±y8: 2P has y = 0, i.e. x^2 = -y^2, so d·y^4 + 2·y^2 - 1 = 0, and -y8 = p - y8.
        let (y8, minus_y8) = (SMALL_ORDER_Y[3], SMALL_ORDER_Y[4]);
        assert_eq!(y8.add(&minus_y8), Fe::ZERO);
        let y2 = y8.mul(&y8);
        assert_eq!(
            D.mul(&y2).mul(&y2).add(&y2).add(&y2).sub(&Fe::ONE),
            Fe::ZERO
        );
        let u = y2.sub(&Fe::ONE);
        let v = D.mul(&y2).add(&Fe::ONE);
        assert!(is_square(&u.mul(&v)));
    }

    #[test]
    fn keys_are_refused_for_their_own_reason() {
        // RFC 8032 §7.1 test 1's public key.
        let good: [u8; 32] = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        assert_eq!(check_public_key(&good), Ok(()));
        for y in SMALL_ORDER_Y {
            for negative in [false, true] {
                assert_eq!(
                    check_public_key(&encode(&y, negative)),
                    Err(BadPoint::SmallOrder)
                );
            }
        }
        // p, p + 1 and 2^255 - 1: y not below p.
        for low in [0xed, 0xee, 0xff] {
            let mut bytes = [0xffu8; 32];
            bytes[0] = low;
            bytes[31] = 0x7f;
            assert_eq!(check_public_key(&bytes), Err(BadPoint::NonCanonical));
        }
        // y = 2 gives x^2 = 3 / (4d + 1), not a square: no such point.
        assert_eq!(
            check_public_key(&encode(&small(2), false)),
            Err(BadPoint::NotOnCurve)
        );
    }
}

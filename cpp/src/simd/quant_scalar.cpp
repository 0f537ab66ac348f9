// Reference kernels for quantised rows: plain loops that every SIMD level is tested against.
#include "quant_scalar_impl.h"
#include "vecdex/simd/quant_kernel_decls.h"

namespace vecdex {
namespace scalar {
namespace {

float dot_f16(const float* q, const std::uint16_t* x, std::size_t d) {
  float s = 0.f;
  for (std::size_t i = 0; i < d; ++i) s += q[i] * qref::f16_to_f32(x[i]);
  return s;
}
float l2sq_f16(const float* q, const std::uint16_t* x, std::size_t d) {
  float s = 0.f;
  for (std::size_t i = 0; i < d; ++i) {
    const float t = q[i] - qref::f16_to_f32(x[i]);
    s += t * t;
  }
  return s;
}
float dot_bf16(const float* q, const std::uint16_t* x, std::size_t d) {
  float s = 0.f;
  for (std::size_t i = 0; i < d; ++i) s += q[i] * qref::bf16_to_f32(x[i]);
  return s;
}
float l2sq_bf16(const float* q, const std::uint16_t* x, std::size_t d) {
  float s = 0.f;
  for (std::size_t i = 0; i < d; ++i) {
    const float t = q[i] - qref::bf16_to_f32(x[i]);
    s += t * t;
  }
  return s;
}

void f32_to_f16(const float* in, std::uint16_t* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = qref::f32_to_f16(in[i]);
}
void f16_to_f32(const std::uint16_t* in, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = qref::f16_to_f32(in[i]);
}
void f32_to_bf16(const float* in, std::uint16_t* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = qref::f32_to_bf16(in[i]);
}
void bf16_to_f32(const std::uint16_t* in, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = qref::bf16_to_f32(in[i]);
}

float dot_u8_f32(const float* w, const std::uint8_t* code, std::size_t d) {
  float s = 0.f;
  for (std::size_t i = 0; i < d; ++i) s += w[i] * float(code[i]);
  return s;
}
float l2sq_u8_f32(const float* b, const float* scale, const std::uint8_t* code, std::size_t d) {
  float s = 0.f;
  for (std::size_t i = 0; i < d; ++i) {
    const float t = b[i] - scale[i] * float(code[i]);
    s += t * t;
  }
  return s;
}

std::int32_t dot_u8_i8(const std::uint8_t* code, const std::int8_t* q, std::size_t d) {
  return qref::dot_u8_i8_from(code, q, 0, d);
}
std::int32_t l2sq_u8_u8(const std::uint8_t* code, const std::uint8_t* q, std::size_t d) {
  return qref::l2sq_u8_u8_from(code, q, 0, d);
}

std::int32_t dot_u4_i8(const std::uint8_t* packed, const std::int8_t* q, std::size_t d) {
  return qref::dot_u4_i8_from(packed, q, 0, d);
}
float dot_u4_f32(const float* w, const std::uint8_t* packed, std::size_t d) {
  float s = 0.f;
  for (std::size_t i = 0; i < d; ++i) s += w[i] * float(qref::sq4_code(packed, i));
  return s;
}
float l2sq_u4_f32(const float* b, const float* scale, const std::uint8_t* packed, std::size_t d) {
  float s = 0.f;
  for (std::size_t i = 0; i < d; ++i) {
    const float t = b[i] - scale[i] * float(qref::sq4_code(packed, i));
    s += t * t;
  }
  return s;
}

const QuantKernels kTable = {
    SimdLevel::Scalar, "scalar",
    dot_f16,           l2sq_f16,    dot_bf16,    l2sq_bf16,  f32_to_f16, f16_to_f32, f32_to_bf16, bf16_to_f32,
    dot_u8_f32,        l2sq_u8_f32, dot_u8_i8,   l2sq_u8_u8, dot_u4_i8,  dot_u4_f32, l2sq_u4_f32,
};

}  // namespace

const QuantKernels* quant_table() { return &kTable; }

}  // namespace scalar
}  // namespace vecdex

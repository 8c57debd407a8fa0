#include "kfac/distributed/collectives.h"

#include <ATen/ATen.h>

#include <map>
#include <tuple>

#include "kfac/errors.h"

namespace kfac {

namespace {
// Sums `flat` tensors (1-D) over ranks in buckets of at most bucket_bytes per dtype and device, in place.
void all_reduce_flat(Communicator& comm, const std::vector<at::Tensor>& flat, int64_t bucket_bytes) {
  std::map<std::tuple<int, int, int>, std::vector<at::Tensor>> groups;  // (dtype, device type, index)
  for (const auto& t : flat)
    groups[{static_cast<int>(t.scalar_type()), static_cast<int>(t.device().type()), t.device().index()}].push_back(t);
  for (auto& [key, members] : groups) {
    size_t start = 0;
    while (start < members.size()) {
      size_t end = start;
      int64_t bytes = 0;
      while (end < members.size() &&
             (end == start || bytes + members[end].numel() * members[end].element_size() <= bucket_bytes))
        bytes += members[end].numel() * members[end].element_size(), ++end;
      std::vector<at::Tensor> parts(members.begin() + static_cast<int64_t>(start),
                                    members.begin() + static_cast<int64_t>(end));
      std::vector<at::Tensor> bucket{at::cat(parts)};
      comm.all_reduce_sum(bucket);
      int64_t offset = 0;
      for (auto& p : parts) {
        p.copy_(bucket[0].narrow(0, offset, p.numel()));
        offset += p.numel();
      }
      start = end;
    }
  }
}
}  // namespace

void all_reduce_mean(Communicator& comm, const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  if (comm.size() == 1) return;
  std::vector<at::Tensor> flat;
  flat.reserve(tensors.size());
  for (const auto& t : tensors) flat.push_back(t.contiguous().view({-1}));
  all_reduce_flat(comm, flat, bucket_bytes);
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].is_contiguous()) tensors[i].copy_(flat[i].view(tensors[i].sizes()));
    tensors[i].div_(comm.size());
  }
}

void all_reduce_gradients(Communicator& comm, const std::vector<at::Tensor>& parameters, int64_t bucket_bytes) {
  std::vector<at::Tensor> grads;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  all_reduce_mean(comm, grads, bucket_bytes);
}

void all_reduce_symmetric_mean(Communicator& comm, const std::vector<at::Tensor>& matrices, int64_t bucket_bytes) {
  if (comm.size() == 1) return;
  std::vector<at::Tensor> packed, rows, cols;
  for (const auto& m : matrices) {
    KFAC_CHECK(m.dim() == 2 && m.size(0) == m.size(1), "all_reduce_symmetric_mean needs square matrices, got ",
               m.sizes());
    const auto idx = at::triu_indices(m.size(0), m.size(0), 0, at::TensorOptions().device(m.device()));
    rows.push_back(idx[0]), cols.push_back(idx[1]);
    packed.push_back(m.index({idx[0], idx[1]}));
  }
  all_reduce_flat(comm, packed, bucket_bytes);
  for (size_t i = 0; i < matrices.size(); ++i) {
    const auto values = packed[i] / comm.size();
    matrices[i].index_put_({rows[i], cols[i]}, values);
    matrices[i].index_put_({cols[i], rows[i]}, values);
  }
}

void broadcast_tensors(Communicator& comm, std::vector<at::Tensor>& tensors, int root,
                       const at::TensorOptions& options) {
  if (comm.size() == 1) return;
  // Header: [count, (ndim, sizes...) per tensor], ndim −1 for an undefined tensor; its length goes first.
  std::vector<int64_t> header{static_cast<int64_t>(tensors.size())};
  if (comm.rank() == root)
    for (const auto& t : tensors) {
      header.push_back(t.defined() ? t.dim() : -1);
      if (t.defined())
        for (auto s : t.sizes()) header.push_back(s);
    }
  const auto header_options = at::TensorOptions().dtype(at::kLong).device(comm.device());
  std::vector<at::Tensor> length{at::full({1}, static_cast<int64_t>(header.size()), header_options)};
  comm.broadcast(length, root);
  std::vector<at::Tensor> head{comm.rank() == root ? at::tensor(header, at::kLong).to(comm.device())
                                                   : at::empty({length[0].item<int64_t>()}, header_options)};
  comm.broadcast(head, root);
  const auto h = head[0].cpu();
  const auto* p = h.data_ptr<int64_t>();
  KFAC_CHECK(p[0] == static_cast<int64_t>(tensors.size()), "broadcast_tensors: root sends ", p[0],
             " tensors but this rank expects ", tensors.size());
  std::vector<std::vector<int64_t>> shapes;
  int64_t total = 0, pos = 1;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t ndim = p[pos++];
    if (ndim < 0) {
      shapes.emplace_back();
      tensors[i] = at::Tensor();
      continue;
    }
    std::vector<int64_t> shape(p + pos, p + pos + ndim);
    pos += ndim;
    int64_t n = 1;
    for (auto s : shape) n *= s;
    total += n;
    shapes.push_back(std::move(shape));
  }
  std::vector<at::Tensor> data{at::empty({total}, options)};
  if (comm.rank() == root) {
    std::vector<at::Tensor> parts;
    for (const auto& t : tensors)
      if (t.defined()) parts.push_back(t.to(options).reshape({-1}));
    if (!parts.empty()) data[0] = at::cat(parts);
  }
  comm.broadcast(data, root);
  if (comm.rank() == root) return;
  int64_t offset = 0;
  pos = 1;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t ndim = p[pos++];
    if (ndim < 0) continue;  // undefined on root
    pos += ndim;
    int64_t n = 1;
    for (auto s : shapes[i]) n *= s;
    tensors[i] = data[0].narrow(0, offset, n).view(shapes[i]).clone();
    offset += n;
  }
}

}  // namespace kfac

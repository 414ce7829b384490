# One image for `edgeopt serve` and `edgeopt worker` (docs/deploy.md). Built from Debian 12 with the
# same install script as a developer machine.
FROM debian:12 AS build
RUN apt-get update -q && apt-get install -y -q --no-install-recommends make git ca-certificates sudo && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/install-deps.sh && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGEOPT_TESTS=OFF && cmake --build build -j "$(nproc)" --target edgeopt edgeopt_torch

FROM debian:12
RUN apt-get update -q && apt-get install -y -q --no-install-recommends \
      libtorch1.13 libopenblas0-pthread libonnx1 libprotobuf32 libhdf5-103-1 libzip4 libcurl4 libpng16-16 libjpeg62-turbo \
      libsqlite3-0 libpqxx-6.4 dataset-fashion-mnist ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/edgeopt /src/build/libedgeopt_torch.so /opt/edgeopt/build/
COPY --from=build /src/data /opt/edgeopt/data
COPY --from=build /src/web/dist /opt/edgeopt/web/dist
ENV EDGEOPT_RESOURCE_DIR=/opt/edgeopt/data
EXPOSE 8000
ENTRYPOINT ["/opt/edgeopt/build/edgeopt"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--store", "/var/lib/edgeopt"]
